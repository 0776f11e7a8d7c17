"""The named exceptions a user of detector can meet. Every message says what was wrong and what to do."""


class DetectorError(Exception):
    """Base class for every error detector raises on purpose."""


class InputError(DetectorError):
    """A document or input line could not be read (malformed JSON, missing field, bad encoding)."""


class IndexFolderError(DetectorError):
    """An index folder is missing, corrupt or incompatible."""


class IndexExistsError(IndexFolderError):
    """An index was to be created where one already is."""


class IncompatibleIndexError(IndexFolderError):
    """The index was built with another model or another format version."""


class IndexLockedError(DetectorError):
    """Another process holds the index's write lock for longer than the timeout."""


class UnknownDocumentError(DetectorError):
    """A document id that the index does not hold."""
