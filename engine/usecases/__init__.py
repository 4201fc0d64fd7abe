"""The service desk's use cases, split by aggregate; ``engine.desk.Desk`` joins them."""
