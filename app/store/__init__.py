"""Storage: models, engine, migrations, repositories and the batched event writer."""
