"""A provider study at corpus scale: many songs, several providers, paired statistics, on Dask.

Modules: :mod:`.songs` (``SONGS.csv``, providers, costs), :mod:`.work` (what runs on a worker:
one fetch, one song's scores), :mod:`.engine` (dask.distributed: slots per account, progress),
:mod:`.store` (the output folder), :mod:`.run` (:func:`stemlab.study`). See ``docs/scale.md``.
"""
