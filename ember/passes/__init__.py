"""Graph -> graph transformations. For now: the VJP rule table that autodiff and eager
autograd share (`vjp_rules`)."""
