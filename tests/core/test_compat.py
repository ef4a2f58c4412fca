"""Files written before the code moved into stage subpackages still open.

Models saved before the restructure name their custom layers' module "workbench.core.layers",
which no longer exists; Keras finds the layers by their registered names ("workbench>...").
"""

import json
import zipfile

from core_helpers import tiny_config

from workbench.core.engine.model import build_model
from workbench.core.engine.saving import load_model_file


def with_old_module_names(source, target):
    """A copy of a .keras file whose config names the custom layers' module as it was."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                text = data.decode("utf-8").replace('"workbench.core.engine.layers"', '"workbench.core.layers"')
                assert '"workbench.core.layers"' in text
                data = text.encode("utf-8")
            zout.writestr(item, data)


def test_a_model_saved_before_the_restructure_loads_and_predicts_the_same(tmp_path, image_tree):
    import numpy as np

    config = tiny_config(image_tree, **{"dropout.kind": "dropblock", "dropout.rate": 0.1,
                                        "dropout.placement": ["feature_map"]})
    model = build_model(config, 3)
    new = tmp_path / "new.keras"
    model.save(new)
    old = tmp_path / "old.keras"
    with_old_module_names(new, old)
    names = json.loads(zipfile.ZipFile(old).read("config.json"))
    assert "workbench>DropBlock2D" in json.dumps(names) and "workbench>Preprocess" in json.dumps(names)
    loaded = load_model_file(old)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
