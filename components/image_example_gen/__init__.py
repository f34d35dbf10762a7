"""ImageExampleGen: labelled images -> train/eval/unseen tf.Examples (Beam TFX component).

`ImageExampleGen` is imported lazily: Beam workers import `transforms` through this
package, and importing the component would pull all of TFX into every worker.
"""

__all__ = ["ImageExampleGen"]


def __getattr__(name):
    if name == "ImageExampleGen":
        from components.image_example_gen.component import ImageExampleGen

        return ImageExampleGen
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
