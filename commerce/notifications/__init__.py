"""Email to customers: an outbox in the database, templates in Polish and English, an SMTP sender."""
