from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_credits')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Job',
            name='deleted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Job',
            name='deleted_by',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Job',
            name='post_attempted_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
