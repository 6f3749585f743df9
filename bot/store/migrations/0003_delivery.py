from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_provider_options')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Job',
            name='result_channel_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Job',
            name='placed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
