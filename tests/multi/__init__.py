"""Several workers on one database: claims, the outbox, the digest, Scrapyd."""
