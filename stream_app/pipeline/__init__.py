"""The pure core of the stream: validation, scoring records and minute counts. No Kafka here."""
