from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from bot.store.models import FailureKind, JobAction, JobState, LedgerState, QuotaPeriod
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Guild',
            fields=[
                ('id', fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ('quota_limit', fields.IntField(null=True)),
                ('quota_period', fields.CharEnumField(null=True, description='DAY: day\nWEEK: week\nMONTH: month', enum_type=QuotaPeriod, max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'guilds', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A Discord server. Null quota fields mean: use the defaults from the environment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoleLimit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guild', fields.ForeignKeyField('models.Guild', source_field='guild_id', db_constraint=True, to_field='id', related_name='role_limits', on_delete=OnDelete.CASCADE)),
                ('role_id', fields.BigIntField()),
                ('limit', fields.IntField()),
            ],
            options={'table': 'role_limits', 'app': 'models', 'unique_together': (('guild', 'role_id'),), 'pk_attr': 'id', 'table_description': 'A per-role limit. A member gets the highest limit among their roles.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guild', fields.ForeignKeyField('models.Guild', source_field='guild_id', db_constraint=True, to_field='id', related_name='jobs', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='jobs', on_delete=OnDelete.CASCADE)),
                ('channel_id', fields.BigIntField()),
                ('thread_id', fields.BigIntField(null=True)),
                ('status_message_id', fields.BigIntField(null=True)),
                ('source_message_id', fields.BigIntField(null=True)),
                ('result_message_id', fields.BigIntField(null=True)),
                ('action', fields.CharEnumField(description='GENERATE: generate\nEXTEND: extend', enum_type=JobAction, max_length=16)),
                ('prompt', fields.TextField(unique=False)),
                ('options', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('parent', fields.ForeignKeyField('models.Job', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.SET_NULL)),
                ('parent_video_id', fields.CharField(null=True, max_length=128)),
                ('parent_video_url', fields.TextField(null=True, unique=False)),
                ('provider', fields.CharField(max_length=32)),
                ('task_id', fields.CharField(null=True, db_index=True, max_length=128)),
                ('state', fields.CharEnumField(default=JobState.QUEUED, db_index=True, description='QUEUED: queued\nSUBMITTING: submitting\nRUNNING: running\nCOMPLETED: completed\nFAILED: failed', enum_type=JobState, max_length=16)),
                ('video_id', fields.CharField(null=True, db_index=True, max_length=128)),
                ('video_url', fields.TextField(null=True, unique=False)),
                ('video_width', fields.IntField(null=True)),
                ('video_height', fields.IntField(null=True)),
                ('thumbnail_url', fields.TextField(null=True, unique=False)),
                ('thumbnail_width', fields.IntField(null=True)),
                ('thumbnail_height', fields.IntField(null=True)),
                ('failure_kind', fields.CharEnumField(null=True, description='MODERATION: moderation\nBALANCE: balance\nAUTH: auth\nINVALID: invalid\nPROVIDER: provider\nTIMEOUT: timeout\nINTERRUPTED: interrupted\nFAILED: failed', enum_type=FailureKind, max_length=16)),
                ('failure_reason', fields.TextField(null=True, unique=False)),
                ('claimed_by', fields.CharField(null=True, max_length=64)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('callback_secret', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('deadline_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('next_poll_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivery_attempts', fields.IntField(default=0)),
                ('next_delivery_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'jobs', 'app': 'models', 'indexes': [Index(fields=['guild_id', 'user_id', 'created_at']), Index(fields=['state', 'delivered_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='QuotaUsage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guild', fields.ForeignKeyField('models.Guild', source_field='guild_id', db_constraint=True, to_field='id', related_name='usage', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='usage', on_delete=OnDelete.CASCADE)),
                ('period_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used', fields.IntField(default=0)),
                ('held', fields.IntField(default=0)),
            ],
            options={'table': 'quota_usage', 'app': 'models', 'unique_together': (('guild', 'user', 'period_start'),), 'pk_attr': 'id', 'table_description': "One member's counters for one period: `used` units are charged, `held` are reserved by live jobs."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='QuotaEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.OneToOneField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='quota_entry', on_delete=OnDelete.CASCADE)),
                ('usage', fields.ForeignKeyField('models.QuotaUsage', source_field='usage_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('state', fields.CharEnumField(default=LedgerState.HELD, description='HELD: held\nCHARGED: charged\nREFUNDED: refunded', enum_type=LedgerState, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'quota_ledger', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One reserved unit, tied to one job. It moves held → charged or held → refunded exactly once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UserLimit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guild', fields.ForeignKeyField('models.Guild', source_field='guild_id', db_constraint=True, to_field='id', related_name='user_limits', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='limits', on_delete=OnDelete.CASCADE)),
                ('limit', fields.IntField()),
            ],
            options={'table': 'user_limits', 'app': 'models', 'unique_together': (('guild', 'user'),), 'pk_attr': 'id', 'table_description': 'A per-member override, which beats role and server limits.'},
            bases=['Model'],
        ),
    ]
