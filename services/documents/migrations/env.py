from ambito_common.alembic_env import run_migrations
from documents.models import Base

run_migrations(Base.metadata)
