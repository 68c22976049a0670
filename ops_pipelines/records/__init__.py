"""Typed records of what one module's materializations and checks say, for the modules that read
them: the one writer (`to_metadata`) and the one reader (`from_metadata`) of each, so no reader
matches a metadata key by its string name and a renamed key cannot silently break one."""
