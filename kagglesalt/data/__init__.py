"""The competition's data folder in the Kaggle layout: reading it (`folder`, whose names are
the ones below), the synthetic data set in the same layout (`synth`) and the stratified folds
(`folds`)."""

from kagglesalt.data.folder import (
    CACHE_DIR,
    LAYOUT,
    SIZE,
    SOURCE_MARKER,
    Split,
    has_train,
    is_synthetic,
    layout_complete,
    load_test,
    load_train,
    read_image,
    replace_folder,
    sample_submission_ids,
    source,
)

__all__ = ["CACHE_DIR", "LAYOUT", "SIZE", "SOURCE_MARKER", "Split", "has_train", "is_synthetic",
           "layout_complete", "load_test", "load_train", "read_image", "replace_folder",
           "sample_submission_ids", "source"]
