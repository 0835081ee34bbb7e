"""Rendering of cards and attack results: console tables, JSON, Markdown and the HTML report."""
