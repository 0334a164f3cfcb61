"""Graph -> graph transformations: the VJP rule table shared with eager autograd
(`vjp_rules`), the autodiff pass that builds joint forward+backward graphs from it
(`autodiff`), the min-cut partition of a joint graph into forward and backward graphs
(`partition`), the simplification passes (`simplify`) and the `PassManager` that runs, times,
verifies and dumps passes (`manager`, with logging topics in `logs`)."""
