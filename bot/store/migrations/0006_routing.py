from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_media')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Job',
            name='key_id',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Job',
            name='slot',
            field=fields.IntField(null=True),
        ),
        # Each key's limit, held by the database across processes: one holder per (key, slot) among the jobs
        # that are with the provider. Partial unique indexes read the same on SQLite and PostgreSQL.
        ops.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS jobs_key_slot_active ON jobs (key_id, slot) "
            "WHERE state IN ('submitting', 'running')",
            reverse_sql="DROP INDEX IF EXISTS jobs_key_slot_active",
        ),
    ]
