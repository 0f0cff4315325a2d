"""Dataset classes (BasicSR's ``DATASET_REGISTRY``): ``paired_medical_image_dataset``. Preparing data from
downloads is :mod:`medsr_se.prepare`."""
