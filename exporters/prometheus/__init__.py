"""Prometheus: the worker's pipeline metrics, the scrape-time entity gauges and the API process's metrics."""
