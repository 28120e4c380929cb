"""The Kafka edge: the only code that imports faust or a Kafka client."""
