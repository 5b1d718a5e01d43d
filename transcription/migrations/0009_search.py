"""Full-text search across meetings (PostgreSQL only): a stored, language-aware ``tsvector`` on
segments and on their translations, each with a GIN index.

The vector is a generated column, so every write (a final, a correction, a re-translation)
keeps it current without application code. Its text search configuration follows the row's
``language``: ``russian`` for ru, ``english`` for en, ``simple`` (no stemming, no stop words)
otherwise. ``to_tsvector`` with a configuration read from a column is not IMMUTABLE, a CASE of
constant configurations is. Django does not know the columns (no model field): only
``transcription.search`` reads them, with raw SQL. SQLite gets nothing (its search is the
``icontains`` fallback).
"""

from django.db import migrations

SEARCH_CONFIG = (
    "CASE lower(left({column}, 2)) WHEN 'ru' THEN 'russian'::regconfig "
    "WHEN 'en' THEN 'english'::regconfig ELSE 'simple'::regconfig END"
)
"""Keep in step with ``transcription.search.postgres.SEARCH_CONFIG``."""
TABLES = {
    "transcription_transcriptsegment": "transcription_segment_search_idx",
    "transcription_segmenttranslation": "transcription_translation_search_idx",
}


def _forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    config = SEARCH_CONFIG.format(column="language")
    for table, index in TABLES.items():
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS (to_tsvector({config}, text)) STORED"
        )
        schema_editor.execute(f"CREATE INDEX {index} ON {table} USING gin (search_vector)")


def _backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, index in TABLES.items():
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")


class Migration(migrations.Migration):
    dependencies = [
        ("transcription", "0008_translations"),
    ]

    operations = [migrations.RunPython(_forward, _backward, elidable=False)]
