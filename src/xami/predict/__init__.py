"""``xami predict``: find the artefacts of many images and write the products astronomers use.

`xami.predict.inputs` turns paths, folders, globs and list files into inputs and reads one image,
`xami.predict.run` predicts them (here, or on Dask workers through `xami.predict.cluster`) and
`xami.predict.records` keeps the per-image records that make runs resumable and the manifest.
"""

from xami.predict.cluster import dask_client
from xami.predict.inputs import MASK_GRIDS, FoundInput, expand_inputs, find_inputs, load_input
from xami.predict.records import FORMATS, write_manifest
from xami.predict.run import PredictConfig, RunSummary, process_image, provenance, run_predict

__all__ = [
    "FORMATS",
    "MASK_GRIDS",
    "FoundInput",
    "PredictConfig",
    "RunSummary",
    "dask_client",
    "expand_inputs",
    "find_inputs",
    "load_input",
    "process_image",
    "provenance",
    "run_predict",
    "write_manifest",
]
