"""SQLAlchemy 2 typed models. Import `models.all` to register every table."""
