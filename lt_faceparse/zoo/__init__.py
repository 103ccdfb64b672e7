"""Released face parsers by name (``segface/swinb_celeba_512``, ...): the registry
(:mod:`lt_faceparse.zoo.registry`) and fetching, converting and caching their weights
(:mod:`lt_faceparse.zoo.fetch`). ``lt-faceparse zoo list`` prints the registry;
``parse --model``, ``eval --model`` and ``FaceParser.from_pretrained`` use :func:`pretrained_weights`.
"""

from lt_faceparse.zoo.fetch import cache_state, pretrained_weights, source_file, user_file_path, zoo_home
from lt_faceparse.zoo.registry import LicenceTerms, ZooEntry, get_entry, register_entry, zoo_entries

__all__ = ["LicenceTerms", "ZooEntry", "cache_state", "get_entry", "pretrained_weights", "register_entry",
           "source_file", "user_file_path", "zoo_entries", "zoo_home"]
