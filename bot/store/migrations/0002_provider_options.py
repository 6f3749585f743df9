from tortoise import migrations
from tortoise.migrations import operations as ops
from bot.store.models import FailureKind
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    # Tortoise 1.1 also emitted a spurious primary-key change of guilds.id and users.id; removed (README).
    operations = [
        ops.AlterField(
            model_name='Job',
            name='failure_kind',
            field=fields.CharEnumField(null=True, description='MODERATION: moderation\nBALANCE: balance\nAUTH: auth\nINVALID: invalid\nPROVIDER: provider\nTIMEOUT: timeout\nINTERRUPTED: interrupted\nUNCONFIRMED: unconfirmed\nFAILED: failed', enum_type=FailureKind, max_length=16),
        ),
        ops.AddField(
            model_name='Job',
            name='resubmits',
            # db_default: a NOT NULL column added to a table with rows needs one (SQLite refuses otherwise).
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
