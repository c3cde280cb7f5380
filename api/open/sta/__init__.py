"""OGC SensorThings API 1.1, read-only (`routes.py`): the entities (`entities.py`), their
Observations from the store (`observations.py`) and the OData query options (`odata.py`)."""
