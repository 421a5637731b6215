"""fdawatch's Scrapy spiders: they fetch and parse, and yield typed items only.

They never touch the database, email or templates; `monitor.runtime.pipeline` records what they
yield.
"""
