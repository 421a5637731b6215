from setuptools import setup

setup()  # for scrapyd-deploy, which builds the egg with setup.py; metadata is in pyproject.toml
