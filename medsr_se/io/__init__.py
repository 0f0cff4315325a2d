"""Files in and out, by format and direction: images (``images``), CT / MRI volumes (``volumes``: the record and
what every format shares; ``nifti``; ``dicom_reading``; ``dicom_derived``), thick-slice scans for through-plane SR
(``scans``), the intensity models that map physical values to the network's range (``intensity``), and the one
module that publishes outputs whole (``publish``)."""
