"""Linked documents (`follow_documents = true`): the PDFs behind a page or an API record.

After a source's own response is parsed, each document it links (in a page's watched region: a
link to `.pdf`, to FDA's `/media/<id>/download`, or marked `type="application/pdf"`; in a
Drugs@FDA submission: its `application_docs`; in a Federal Register document: its `pdf_url`) is
fetched in the same crawl, one after the other, through the same downloader (politeness, robots,
retries, CDN block detection and host back-off). Each is asked conditionally with the ETag /
Last-Modified of its stored version (`FDAWATCH_DOCUMENTS`, filled by monitor.runtime.scrapy_addon);
a document whose kind never changes once published (a Federal Register PDF) is not asked again.
A PDF's text is read by `monitor.core.pdf_text` in a child process (memory and time limited), and
the document is observed as its own `DOCUMENT` keyed by its canonical URL, with the raw PDF as
its body. The source's fetch record comes last and lists every document still linked.

Failing loudly, never changing: HTML, text or an empty body where a PDF was linked (an error or
login page), a PDF over `max_document_bytes` or `max_document_pages`, an unreadable PDF, a
timeout: the fetch fails naming the document; the other documents are recorded, that one keeps
its stored version. A refusal by the CDN ends the fetch as BLOCKED and leaves the remaining
documents for the next check. A linked document answering 404 / 410 is missing: it counts
towards its removal, as a page does (`confirm_removal`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

from scrapy import Request

from monitor.items import BLOCKED, DOCUMENT, FAILED, Observation, SourceFetch, canonical_url
from spiders.base import (
    HANDLED_STATUSES,
    MAX_ERROR_CHARS,
    conditional_headers,
    describe_failure,
    header,
    latency_ms,
    redirected_from,
    small_headers,
)
from spiders.blocks import Blocked, Evidence
from spiders.middlewares import ResponseTooLarge

if TYPE_CHECKING:
    from parsel import SelectorList
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from monitor.sources import SourceConfig

RUN = "fdawatch_documents"
LINK = "fdawatch_document_link"
#: FDA's document downloads: https://www.fda.gov/media/<id>/download
FDA_MEDIA = re.compile(r"^/media/\d+/download/?$", re.IGNORECASE)
#: "Medication Guide (PDF - 245KB)": the size note changes with the file, the title does not.
SIZE_NOTE = re.compile(r"\s*\((?:pdf|PDF)\b[^)]*\)\s*$")
#: Link texts that name no document: the PDF's own title (or its file name) is used instead.
GENERIC_TEXTS = frozenset({"", "pdf", "download", "here", "click here", "link", "view", "open"})
#: Seconds the child process may take to read one PDF.
EXTRACT_TIMEOUT = 60
MAX_TITLE_CHARS = 200
TEXT_TYPES = ("text/", "html", "xml", "json")


@dataclass(frozen=True)
class DocumentLink:
    """A document linked from a source: its key (canonical URL), the URL to get and its name."""

    key: str
    url: str
    title: str = ""


@dataclass
class DocumentRun:
    """One fetch of one source while its documents are fetched: what came and what failed."""

    source: SourceConfig
    record: SourceFetch  # the source's own record (OK, or FAILED for an incomplete result set)
    observations: list[Observation]  # the source's own documents
    queue: list[DocumentLink]
    present: list[str] = field(default_factory=list)  # linked documents still there
    found: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocked: Evidence | None = None
    bytes: int = 0
    duration_ms: int = 0


class DocumentError(Exception):
    """A linked document that could not be read; the message says which limit or problem."""


def document_links(region: SelectorList[Any], base_url: str) -> list[DocumentLink]:
    """The document links of a page's watched region, in page order, one per canonical URL."""
    links: dict[str, DocumentLink] = {}
    for anchor in region.css("a[href]"):
        href = (anchor.attrib.get("href") or "").strip()
        url = urljoin(base_url, href)
        if not is_document_url(url, anchor.attrib.get("type") or ""):
            continue
        text = SIZE_NOTE.sub("", " ".join(anchor.xpath("string()").get("").split()))
        key = canonical_url(url)
        known = links.get(key)
        if known is None or (not known.title and text):
            links[key] = DocumentLink(key, url, text[:MAX_TITLE_CHARS])
    return list(links.values())


def is_document_url(url: str, type_attribute: str = "") -> bool:
    """A link to a document: `.pdf`, FDA's `/media/<id>/download`, or `type="application/pdf"`."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return False
    path = parts.path.lower()
    return path.endswith(".pdf") or bool(FDA_MEDIA.match(path)) or "pdf" in type_attribute.lower()


def document_title(link: DocumentLink, pdf_title: str) -> str:
    """The link text, unless it names nothing ("PDF", "Download"); then the PDF's own title."""
    if link.title.lower() not in GENERIC_TEXTS:
        return link.title
    if pdf_title:
        return pdf_title[:MAX_TITLE_CHARS]
    return link.title or urlsplit(link.url).path.rstrip("/").rsplit("/", 1)[-1] or link.url


def not_a_document(response: Response) -> str | None:
    """Why a 2xx answer is not the document that was linked (an error page?), or None."""
    content_type = (header(response, "content-type") or "no content-type").lower()
    if not response.body.strip():
        return f"empty body ({content_type}) where a document was linked"
    if b"%PDF-" in response.body[:1024]:
        return None
    if any(kind in content_type for kind in TEXT_TYPES) or response.body.lstrip()[:1] == b"<":
        return f"expected a PDF, got {content_type} (an error or login page?): not recorded"
    if "pdf" in content_type:
        return f"the answer says {content_type} but is not a PDF (no %PDF- header)"
    return None


def read_in_child(body: bytes, max_pages: int, timeout: float = EXTRACT_TIMEOUT) -> dict[str, Any]:
    """`monitor.core.pdf_text` run in a child process: a crash or a hang fails this document."""
    command = [sys.executable, "-m", "monitor.core.pdf_text", "--max-pages", str(max_pages)]
    try:
        done = subprocess.run(
            command, input=body, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(
            f"reading the PDF took longer than {timeout:g} s: not recorded"
        ) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise DocumentError(f"the PDF reader stopped (exit {done.returncode}: {why[0][:120]})")
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise DocumentError("the PDF reader gave no answer") from None
    if not result.get("ok"):
        raise DocumentError(f"unreadable PDF: {result.get('error')}")
    return result


def document_text(result: dict[str, Any], body_sha256: str) -> str:
    """The text to watch: the paragraphs, or a note saying there is no text layer (never OCR)."""
    paragraphs: list[str] = result["paragraphs"]
    if paragraphs:
        return "\n".join(paragraphs)
    what = "no text layer" if not result["chars"] else "no text besides page headers and footers"
    return (
        f"[{what}: a PDF of {result['pages']} pages whose text cannot be read without OCR, "
        f"which fdawatch does not do; watched by the SHA-256 of its file: {body_sha256}]"
    )


class FollowsDocuments:
    """Spider mixin: fetch the documents a source links, then end the fetch with one record."""

    #: A kind whose documents never change once published: stored ones are not asked again.
    documents_immutable: ClassVar[bool] = False
    logger: Any
    settings: Any

    def follow_documents(
        self,
        source: SourceConfig,
        observations: list[Observation],
        record: SourceFetch,
        links: list[DocumentLink],
    ) -> Iterator[Observation | SourceFetch | Request]:
        """Fetch `links` (one after another), then yield everything and the final record."""
        stored = self.stored_documents(source)
        run = DocumentRun(source, record, observations, queue=[])
        for link in links:
            if self.documents_immutable and link.key in stored:
                run.present.append(link.key)  # published for good: still linked, not asked
            else:
                run.queue.append(link)
        if len(links) > source.max_documents:
            run.queue.clear()
            run.problems.append(
                f"{len(links)} linked documents, more than max_documents = "
                f"{source.max_documents}: none fetched; raise max_documents for {source.id!r}"
            )
        yield from self.next_document(run)

    def stored_documents(self, source: SourceConfig) -> dict[str, dict[str, str | None]]:
        """Validators of the stored documents of `source` by key (monitor.runtime.scrapy_addon)."""
        return dict(self.settings.getdict("FDAWATCH_DOCUMENTS").get(source.id) or {})

    def document_request(self, run: DocumentRun, link: DocumentLink) -> Request:
        validators = self.stored_documents(run.source).get(link.key) or {}
        headers = conditional_headers(validators)
        return Request(
            link.url,
            callback=self.parse_document,
            errback=self.document_failed,
            headers=headers,
            dont_filter=True,
            meta={
                "source_id": run.source.id,
                "handle_httpstatus_list": HANDLED_STATUSES,
                "download_maxsize": run.source.max_document_bytes,
                "fdawatch_started": time.monotonic(),
                RUN: run,
                LINK: link,
            },
        )

    def next_document(self, run: DocumentRun) -> Iterator[Observation | SourceFetch | Request]:
        """The next document's request, or (none left) the source's items and its record."""
        if run.queue:
            yield self.document_request(run, run.queue.pop(0))
            return
        yield from run.observations
        yield from run.found
        yield self.final_record(run)

    def final_record(self, run: DocumentRun) -> SourceFetch:
        """The source's record: its own outcome, made FAILED or BLOCKED by its documents."""
        record = run.record
        keys = [*record.document_keys, *run.present]
        fields: dict[str, Any] = {
            "document_keys": keys,
            "documents": len(keys),
            "bytes": record.bytes + run.bytes,
            "duration_ms": record.duration_ms + run.duration_ms,
        }
        if run.blocked is not None:
            evidence = run.blocked
            self.logger.warning("%s: %s", run.source.id, evidence.describe())
            return replace(
                record,
                **fields,
                outcome=BLOCKED,
                error=evidence.describe()[:MAX_ERROR_CHARS],
                http_status=evidence.status,
                server=evidence.server,
                etag=None,
                last_modified=None,
            )
        if run.problems:
            error = "; ".join(filter(None, [record.error, *run.problems]))[:MAX_ERROR_CHARS]
            self.logger.warning("%s: %s", run.source.id, error)
            return replace(
                record, **fields, outcome=FAILED, error=error, etag=None, last_modified=None
            )
        return replace(record, **fields)

    async def parse_document(self, response: Response, **kwargs: Any) -> list[Any]:
        """One linked document's answer: observed, unchanged (304), missing, or a problem."""
        run: DocumentRun = response.meta[RUN]
        link: DocumentLink = response.meta[LINK]
        run.bytes += len(response.body)
        run.duration_ms += latency_ms(response)
        try:
            await self.read_document(run, link, response)
        except DocumentError as error:
            run.problems.append(f"document {link.url}: {error}")
        except Exception as error:  # a bug must still end in the fetch record
            self.logger.exception("%s: could not read %s", run.source.id, response.url)
            run.problems.append(f"document {link.url}: {type(error).__name__}: {error}")
        return list(self.next_document(run))

    async def read_document(self, run: DocumentRun, link: DocumentLink, response: Response) -> None:
        status = response.status
        if status == 304:
            run.present.append(link.key)
            return
        if status in (404, 410) and not redirected_from(response):
            self.logger.warning(
                "%s: linked document %s answers %s", run.source.id, link.url, status
            )
            return  # missing: not listed as present, so it counts towards its removal
        if not 200 <= status < 300:
            raise DocumentError(f"HTTP {status}")
        problem = not_a_document(response)
        if problem:
            raise DocumentError(problem)
        body = response.body
        digest = hashlib.sha256(body).hexdigest()
        if b"%PDF-" in body[:1024]:
            result = await asyncio.to_thread(read_in_child, body, run.source.max_document_pages)
            text, pdf_title = document_text(result, digest), str(result.get("title") or "")
        else:  # another document type (Word, Excel …): watched by its hash
            kind = header(response, "content-type") or "unknown type"
            text = (
                f"[a {kind} document, not a PDF: its text is not read; watched by the SHA-256 "
                f"of its file: {digest}]"
            )
            pdf_title = ""
        run.found.append(
            Observation(
                source_id=run.source.id,
                key=link.key,
                url=response.url,
                title=document_title(link, pdf_title),
                content=text,
                content_type=DOCUMENT,
                fetched_at=run.record.fetched_at,
                http_status=status,
                body=body,
                headers=small_headers(response),
            )
        )
        run.present.append(link.key)

    def document_failed(self, failure: Failure) -> Iterator[Observation | SourceFetch | Request]:
        """A document that could not be downloaded: noted, and the other documents go on."""
        request: Request = failure.request  # type: ignore[attr-defined]
        run: DocumentRun = request.meta[RUN]
        link: DocumentLink = request.meta[LINK]
        if isinstance(failure.value, Blocked):
            run.blocked = failure.value.evidence
            run.queue.clear()  # the host refuses us: the other documents wait for the next check
        elif too_large(failure.value):
            run.problems.append(
                f"document {link.url}: larger than max_document_bytes = "
                f"{run.source.max_document_bytes}: not recorded; raise max_document_bytes for "
                f"{run.source.id!r} if it should be watched"
            )
        else:
            run.problems.append(f"document {link.url}: {describe_failure(failure)}")
        yield from self.next_document(run)


def too_large(error: BaseException) -> bool:
    return isinstance(error, ResponseTooLarge) or "larger than download max size" in str(error)
