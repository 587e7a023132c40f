// The broker's core is part of what this module offers: the CLI and the tests see it through the broker.
@_exported public import JobwireCore
