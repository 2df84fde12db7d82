"""``xami predict``: find the artefacts of many images and write the products astronomers use.

`xami.predict.inputs` turns paths, folders, globs and list files into inputs, `xami.predict.run`
reads them (`xami.io.frames.load_input`) and predicts them (here, or on Dask workers through
`xami.predict.cluster`) and `xami.predict.records` keeps the per-image records that make runs
resumable and the manifest.
"""

from xami.predict.cluster import dask_client
from xami.predict.inputs import FoundInput, expand_inputs, find_inputs
from xami.predict.records import FORMATS, write_manifest
from xami.predict.run import PredictConfig, RunSummary, process_image, provenance, run_predict

__all__ = [
    "FORMATS",
    "FoundInput",
    "PredictConfig",
    "RunSummary",
    "dask_client",
    "expand_inputs",
    "find_inputs",
    "process_image",
    "provenance",
    "run_predict",
    "write_manifest",
]
