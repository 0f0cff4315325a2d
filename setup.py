from setuptools import find_packages, setup

setup(
    name="medsr-se",
    version="0.1.0",
    description="Improved-SE super-resolution GAN for medical images (retinal fundus first), as a BasicSR plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["medsr_se", "medsr_se.*"]),
    include_package_data=True,
    package_data={"medsr_se": ["options/*.yml"]},
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
        "test": ["pytest", "ruff"],
    },
    entry_points={
        "console_scripts": [
            "medsr-train=medsr_se.train:main",
            "medsr-test=medsr_se.test:main",
            "medsr-prepare-stare=medsr_se.data.prepare_stare:main",
            "medsr-evaluate=medsr_se.evaluate:main",
            "medsr-demo=medsr_se.demo:main",
        ],
    },
)
