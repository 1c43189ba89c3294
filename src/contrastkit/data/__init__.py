"""Data: readers for every supported format, label encoding, and batch samplers."""

from contrastkit.data.dataset import Dataset
from contrastkit.data.labels import EncodedLabels, encode_labels
from contrastkit.data.readers import SUPPORTED_EXTENSIONS, has_split, read_dataset, read_train_test
from contrastkit.data.samplers import ClassBalancedBatchSampler, RandomBatchSampler

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ClassBalancedBatchSampler",
    "Dataset",
    "EncodedLabels",
    "RandomBatchSampler",
    "encode_labels",
    "has_split",
    "read_dataset",
    "read_train_test",
]
