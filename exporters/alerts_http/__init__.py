"""Alert sinks over HTTP: a Slack-compatible webhook and Alertmanager, with retries."""
