import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

AUTOLOAD_PTH = "medsr_se_autoload.pth"
# the version is written once, in medsr_se/version.py
VERSION_FILE = Path(__file__).resolve().parent / "medsr_se" / "version.py"
VERSION = re.search(r'__version__ = "([^"]+)"', VERSION_FILE.read_text()).group(1)
# One line that site.py runs at interpreter start (see medsr_se_autoload.py); failures become one warning.
AUTOLOAD_LINE = (
    "import importlib, warnings; exec(\"try:\\n    importlib.import_module('medsr_se_autoload').install()\\n"
    "except Exception as error:\\n    warnings.warn(f'medsr_se autoload disabled: {error!r}', RuntimeWarning)\")\n"
)


OPTIONS = Path(__file__).resolve().parent / "options"
# the one source of the recipes, as paths relative to options/ (x4.yml, baselines/edsr_x4.yml, ...)
RECIPES = sorted(path.relative_to(OPTIONS) for pattern in ("*.yml", "baselines/*.yml")
                 for path in OPTIONS.glob(pattern))


class BuildPyWithAutoload(build_py):
    """Put medsr_se_autoload.pth at the root of the wheel, i.e. into site-packages (see medsr_se_autoload.py), and
    copy the recipes of options/ into the wheel as medsr_se/recipes/*.yml (``-opt x4`` after ``pip install``)."""

    def run(self):
        super().run()
        Path(self.build_lib).mkdir(parents=True, exist_ok=True)
        Path(self.build_lib, AUTOLOAD_PTH).write_text(AUTOLOAD_LINE)
        recipes = Path(self.build_lib, "medsr_se", "recipes")
        recipes.mkdir(parents=True, exist_ok=True)
        for recipe in RECIPES:
            (recipes / recipe).parent.mkdir(parents=True, exist_ok=True)
            (recipes / recipe).write_bytes((OPTIONS / recipe).read_bytes())

    def get_outputs(self, include_bytecode=True):
        recipes = [str(Path(self.build_lib, "medsr_se", "recipes", recipe)) for recipe in RECIPES]
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, AUTOLOAD_PTH)), *recipes]


class _StrategyWithAutoload:
    """Wraps setuptools' editable strategy: the editable wheel gets the .pth as well."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(AUTOLOAD_PTH, AUTOLOAD_LINE)


class EditableWheelWithAutoload(editable_wheel):
    """``pip install -e .`` installs medsr_se_autoload.pth too (tests/test_autoload.py checks that it did)."""

    def _select_strategy(self, *args, **kwargs):
        return _StrategyWithAutoload(super()._select_strategy(*args, **kwargs))

# pydicom 3: save_as(enforce_file_format=True), Dataset.set_pixel_data, pydicom.pixels (pixel_dtype, pack_bits,
# get_decoder); nibabel 5.3: NumPy 2 support (numpy is not capped above), on top of the older APIs used here
MEDICAL = ["pydicom>=3.0", "nibabel>=5.3"]
# HAT, DAT, DRCT and ATD (medsr_se/archs/transformer_archs.py): spandrel 0.4 implements them (MIT; each
# architecture under its authors' permissive licence) and needs Python >= 3.10
TRANSFORMERS = ["spandrel>=0.4,<0.5; python_version >= '3.10'"]

setup(
    name="medsr-se",
    version=VERSION,
    description="Improved-SE super-resolution GAN for medical images (retinal fundus first), as a BasicSR plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["medsr_se", "medsr_se.*"]),
    py_modules=["medsr_se_autoload"],
    cmdclass={"build_py": BuildPyWithAutoload, "editable_wheel": EditableWheelWithAutoload},
    install_requires=[
        "torch>=2.0",
        "torchvision",
        "basicsr>=1.4.2",
        "mmengine",
        "opencv-python",
        "lmdb",
        "numpy",
        "pyyaml",
        "scikit-image",
    ],
    extras_require={
        "onnx": ["onnx", "onnxruntime"],
        "medical": MEDICAL,  # CT / MRI: DICOM series, NIfTI volumes
        "dicom": MEDICAL,  # the earlier name of "medical"
        "plots": ["matplotlib"],
        "transformers": TRANSFORMERS,  # the HAT / DAT / DRCT / ATD baselines
        "test": ["pytest", "ruff", "import-linter", "onnx", "onnxruntime", *MEDICAL, "matplotlib", *TRANSFORMERS],
    },
    entry_points={
        "console_scripts": [
            "medsr-train=medsr_se.train:main",
            "medsr-test=medsr_se.test:main",
            "medsr-prepare=medsr_se.cli.prepare:main",
            "medsr-prepare-stare=medsr_se.cli.prepare:main",  # the earlier name of medsr-prepare
            "medsr-evaluate=medsr_se.cli.evaluate:main",
            "medsr-demo=medsr_se.cli.demo:main",
            "medsr-infer=medsr_se.cli.infer:main",
            "medsr-plot=medsr_se.cli.plot:main",
            "medsr-export=medsr_se.cli.export:main",
            "medsr-selfsr=medsr_se.cli.selfsr:main",
        ],
    },
)
