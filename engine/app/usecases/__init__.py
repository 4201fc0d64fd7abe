"""The service desk's use cases, split by aggregate; ``engine.app.desk.Desk`` joins them."""
