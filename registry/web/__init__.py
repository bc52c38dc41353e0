"""The web page: one static HTML file that draws a model's lineage from the JSON API."""
