"""Files in and out: images (``images``), CT / MRI volumes (``volumes``: NIfTI, DICOM series), the intensity
models that map physical values to the network's range (``intensity``), and the one atomic writer (``atomic``)."""
