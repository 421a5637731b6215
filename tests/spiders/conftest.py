"""Fixtures of the spider tests (tests/support/spiders.py holds what they hand out)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response

from monitor.items import Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.base import WatchSpider
from tests.support.spiders import FEED, PAGE, build_spider, make_response, split, start_requests


@pytest.fixture
def make_spider() -> Callable[..., WatchSpider]:
    return build_spider


@pytest.fixture
def respond() -> Callable[..., Response]:
    return make_response


@pytest.fixture
def drain() -> Callable[[Iterable[Any]], tuple[list[Observation], SourceFetch]]:
    return split


@pytest.fixture
def requests_of() -> Callable[[WatchSpider], list[Request]]:
    return start_requests


@pytest.fixture
def page_source() -> SourceConfig:
    return PAGE


@pytest.fixture
def feed_source() -> SourceConfig:
    return FEED
