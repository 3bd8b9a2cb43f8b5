// Weight-stationary processing element with two weight banks.
//
// The activation carries the bank select bit (sel) of the pass it belongs to, so a PE switches
// banks exactly when the first activation of the next pass reaches it: the other bank can be
// written while this one computes. Everything advances only on `en` (the array's global stall).
//
// The multiplier (ws_mul) registers its inputs and its product, which keeps the DSP block alone
// in its cycle (on ECP5 inside the block's own registers). Every PE's product therefore
// enters its adder two cycles after its activation arrived; partial sums still move down one
// row per cycle, so a column's sums line up as before and the array gains exactly two cycles
// of latency in total (not two per row).
`default_nettype none

module ws_pe #(
    parameter integer DB  = 8,   // data bits (signed)
    parameter integer ACC = 32   // accumulator bits
) (
    input  wire                  clk,
    input  wire                  en,
    input  wire signed [DB-1:0]  a_in,
    input  wire                  sel_in,
    input  wire signed [ACC-1:0] ps_in,
    input  wire                  we,
    input  wire                  wbank,
    input  wire signed [DB-1:0]  wdata,
    output reg  signed [DB-1:0]  a_out,
    output reg                   sel_out,
    output reg  signed [ACC-1:0] ps_out
);
    reg signed [DB-1:0] w0;
    reg signed [DB-1:0] w1;
    wire signed [DB-1:0] w_sel = sel_in ? w1 : w0;
    wire signed [2*DB-1:0] prod_q;       // a_in * w_sel, two cycles later
    ws_mul #(.AW(DB), .BW(DB)) mul (.clk(clk), .en(en), .a(a_in), .b(w_sel), .p(prod_q));
    wire signed [ACC-1:0] prod_x;

    generate
        if (ACC > 2 * DB) begin : g_ext
            assign prod_x = {{(ACC - 2 * DB){prod_q[2*DB-1]}}, prod_q};
        end else begin : g_noext
            assign prod_x = prod_q[ACC-1:0];
        end
    endgenerate

    always @(posedge clk) begin
        if (en) begin
            a_out   <= a_in;
            sel_out <= sel_in;
            ps_out  <= ps_in + prod_x;
        end
        // not gated by `en`: the top holds we / wdata through a stall, so a repeat is harmless
        if (we && !wbank) w0 <= wdata;
        if (we && wbank)  w1 <= wdata;
    end
endmodule

`default_nettype wire
