// Test model of the ECP5 MULT18X18D, only the subset ws_mul uses: signed A x B, input registers
// and the output register on CLK0 / CE0 / RST0 (synchronous reset), no pipeline register, no
// cascade. Its semantics follow Lattice's sysDSP user guide (FPGA-TN-02205); it exists so the
// MORPHWARE_ECP5 branch of ws_mul (wiring, widths, latency) is simulated, since Yosys ships only
// a black box for this cell.
`default_nettype none
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTA_CE = "CE0",
    parameter REG_INPUTA_RST = "RST0", parameter REG_INPUTB_CLK = "NONE",
    parameter REG_INPUTB_CE = "CE0", parameter REG_INPUTB_RST = "RST0",
    parameter REG_OUTPUT_CLK = "NONE", parameter REG_OUTPUT_CE = "CE0",
    parameter REG_OUTPUT_RST = "RST0", parameter GSR = "ENABLED", parameter RESETMODE = "SYNC"
) (
    input wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input wire CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
    output wire P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2,
    output wire P1, P0
);
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg  [17:0] a_q, b_q;
    reg  [35:0] p_q;
    wire [17:0] a_u = (REG_INPUTA_CLK == "CLK0") ? a_q : a;
    wire [17:0] b_u = (REG_INPUTB_CLK == "CLK0") ? b_q : b;
    wire signed [35:0] a_x = SIGNEDA ? {{18{a_u[17]}}, a_u} : {18'd0, a_u};
    wire signed [35:0] b_x = SIGNEDB ? {{18{b_u[17]}}, b_u} : {18'd0, b_u};
    wire [35:0] prod = a_x * b_x;
    wire [35:0] p = (REG_OUTPUT_CLK == "CLK0") ? p_q : prod;
    always @(posedge CLK0) begin
        if (RST0) begin
            a_q <= 18'd0;
            b_q <= 18'd0;
            p_q <= 36'd0;
        end else if (CE0) begin
            a_q <= a;
            b_q <= b;
            p_q <= prod;
        end
    end
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
            P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1,
            P0} = p;
endmodule
`default_nettype wire
