"""Architecture settings of the eight official SAM 2 / 2.1 checkpoints.

Only the Hiera trunk and the neck's channel list differ between sizes; the 2.1 models add
three parameters (``no_obj_embed_spatial`` and the object-pointer temporal projection).
The values mirror the official yaml files (see ``docs/model.md`` for the table).
"""

from __future__ import annotations

from dataclasses import dataclass, replace



@dataclass(frozen=True)
class HieraConfig:
    """Hiera trunk hyper-parameters."""

    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_att_blocks: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a SAM 2 model with the official key layout."""

    name: str
    version: str  # "2.0" or "2.1"
    size: str  # "tiny", "small", "base_plus", "large" (or "test")
    trunk: HieraConfig
    image_size: int = 1024

    @property
    def is_v21(self) -> bool:
        return self.version == "2.1"

    @property
    def backbone_channel_list(self) -> tuple[int, ...]:
        c = self.trunk.embed_dim
        return (8 * c, 4 * c, 2 * c, c)

    @property
    def embedding_size(self) -> int:
        """Side of the stride-16 image embedding (64 at 1024 px)."""
        return self.image_size // 16

    def with_image_size(self, image_size: int) -> "ModelConfig":
        """The same weights run at another internal resolution (laptop mode)."""
        return replace(self, image_size=int(image_size))


_TRUNKS = {
    "tiny": HieraConfig(96, 1, (1, 2, 7, 2), (5, 7, 9)),
    "small": HieraConfig(96, 1, (1, 2, 11, 2), (7, 10, 13)),
    "base_plus": HieraConfig(112, 2, (2, 3, 16, 3), (12, 16, 20), (8, 4, 14, 7), (14, 14)),
    "large": HieraConfig(144, 2, (2, 6, 36, 4), (23, 33, 43), (8, 4, 16, 8), (7, 7)),
}

SIZES = tuple(_TRUNKS)

CONFIGS: dict[str, ModelConfig] = {}
for _size, _trunk in _TRUNKS.items():
    CONFIGS[f"sam2_hiera_{_size}"] = ModelConfig(f"sam2_hiera_{_size}", "2.0", _size, _trunk)
    CONFIGS[f"sam2.1_hiera_{_size}"] = ModelConfig(f"sam2.1_hiera_{_size}", "2.1", _size, _trunk)

# A miniature trunk for fast tests of the engine and the GUI; not an official layout.
TEST_CONFIG = ModelConfig(
    "sam2.1_test_micro", "2.1", "test", HieraConfig(16, 1, (1, 1, 2, 1), (3,)), image_size=256
)


def get_config(name: str) -> ModelConfig:
    """The configuration of an official checkpoint name (e.g. ``"sam2.1_hiera_tiny"``); CheckpointError if unknown."""
    if name == TEST_CONFIG.name:
        return TEST_CONFIG
    if name not in CONFIGS:
        from ..checkpoints.names import unknown_model

        raise unknown_model(name, list(CONFIGS))
    return CONFIGS[name]
