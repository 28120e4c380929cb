"""The HTTP edge: the JSON API, the page handlers, the route table and the live page's static files."""
