"""Generation providers behind ragline.pipeline.generate.Generator."""
