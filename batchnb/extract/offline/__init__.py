"""The offline backend: labelled values read from the text, no network, no model.

``extractor`` holds :class:`OfflineExtractor` and its entry point ``register``; ``labels``
knows the printed labels of each kind of field in English, German, French and Dutch;
``layout`` splits pages into lines with offsets; ``parties`` finds seller and buyer names;
``receipts`` reads till receipts' fixed layout. Line items come from the tables reader shared
with validation (:mod:`batchnb.extract.tables`).
"""

from batchnb.extract.offline.extractor import OfflineExtractor, register

__all__ = ["OfflineExtractor", "register"]
