"""fdawatch's versions of Scrapy commands (`COMMANDS_MODULE` in spiders/settings.py).

Scrapy names a command after its module, so `crawl.py` here replaces `scrapy crawl`.
"""
