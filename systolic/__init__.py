"""The circuits: RTL, parameters, golden model, cycle model, cocotb drivers and resource estimates."""
