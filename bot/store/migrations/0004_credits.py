from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from bot.store.models import QuotaPeriod
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_delivery')]

    initial = False

    # Tortoise 1.1 also emitted a spurious primary-key change of guilds.id and users.id; removed (README).
    # Credits: a quota unit was one video, and a video at default options is one credit, so every stored
    # count of units becomes the same number of credits, in millicredits (x 1000): members keep exactly
    # what they had used and held, and their limits.
    operations = [
        ops.CreateModel(
            name='BudgetUsage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guild', fields.ForeignKeyField('models.Guild', source_field='guild_id', db_constraint=True, to_field='id', related_name='budget_usage', on_delete=OnDelete.CASCADE)),
                ('period', fields.CharEnumField(description='DAY: day\nWEEK: week\nMONTH: month', enum_type=QuotaPeriod, max_length=8)),
                ('period_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used', fields.BigIntField(default=0)),
                ('held', fields.BigIntField(default=0)),
            ],
            options={'table': 'budget_usage', 'app': 'models', 'unique_together': (('guild', 'period', 'period_start'),), 'pk_attr': 'id', 'table_description': "The whole server's counters for one budget period, in millicredits, kept whether or not a budget is"},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Guild',
            options={'table': 'guilds', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A Discord server. Null quota fields mean: use the defaults from the environment. Every amount of'},
        ),
        ops.AddField(
            model_name='Guild',
            name='budget',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Guild',
            name='budget_period',
            field=fields.CharEnumField(null=True, description='DAY: day\nWEEK: week\nMONTH: month', enum_type=QuotaPeriod, max_length=8),
        ),
        ops.AddField(
            model_name='Guild',
            name='video_options',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Job',
            name='cost',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Job',
            name='price',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterModelOptions(
            name='QuotaEntry',
            options={'table': 'quota_ledger', 'app': 'models', 'pk_attr': 'id', 'table_description': 'What one job reserved, in millicredits. It moves held → charged or held → refunded exactly once; a'},
        ),
        ops.AddField(
            model_name='QuotaEntry',
            name='actual_price',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='QuotaEntry',
            name='amount',
            field=fields.BigIntField(default=1000, db_default=1000),
        ),
        ops.AddField(
            model_name='QuotaEntry',
            name='budget_usage',
            field=fields.ForeignKeyField('models.BudgetUsage', source_field='budget_usage_id', null=True, db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='QuotaEntry',
            name='charged',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='QuotaEntry',
            name='price',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterModelOptions(
            name='QuotaUsage',
            options={'table': 'quota_usage', 'app': 'models', 'unique_together': (('guild', 'user', 'period_start'),), 'pk_attr': 'id', 'table_description': "One member's counters for one period, in millicredits: `used` is charged, `held` is reserved by live"},
        ),
            ops.RunSQL(
            [
                "UPDATE quota_usage SET used = used * 1000, held = held * 1000",
                "UPDATE guilds SET quota_limit = quota_limit * 1000 WHERE quota_limit IS NOT NULL",
                'UPDATE role_limits SET "limit" = "limit" * 1000',
                'UPDATE user_limits SET "limit" = "limit" * 1000',
                "UPDATE quota_ledger SET amount = 1000, charged = CASE state WHEN 'charged' THEN 1000 "
                "WHEN 'refunded' THEN 0 ELSE NULL END",
            ],
            reverse_sql=[
                "UPDATE quota_usage SET used = used / 1000, held = held / 1000",
                "UPDATE guilds SET quota_limit = quota_limit / 1000 WHERE quota_limit IS NOT NULL",
                'UPDATE role_limits SET "limit" = "limit" / 1000',
                'UPDATE user_limits SET "limit" = "limit" / 1000',
            ],
        ),
    ]
