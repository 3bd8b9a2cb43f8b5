// Weight-stationary processing element with two weight banks.
//
// The activation carries the bank select bit (sel) of the pass it belongs to, so a PE switches
// banks exactly when the first activation of the next pass reaches it: the other bank can be
// written while this one computes. Everything advances only on `en` (the array's global stall).
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
    wire signed [DB-1:0] w = sel_in ? w1 : w0;
    wire signed [2*DB-1:0] a_x = {{DB{a_in[DB-1]}}, a_in};
    wire signed [2*DB-1:0] w_x = {{DB{w[DB-1]}}, w};
    wire signed [2*DB-1:0] prod = a_x * w_x;
    wire signed [ACC-1:0] prod_x;

    generate
        if (ACC > 2 * DB) begin : g_ext
            assign prod_x = {{(ACC - 2 * DB){prod[2*DB-1]}}, prod};
        end else begin : g_noext
            assign prod_x = prod[ACC-1:0];
        end
    endgenerate

    always @(posedge clk) begin
        if (en) begin
            a_out   <= a_in;
            sel_out <= sel_in;
            ps_out  <= ps_in + prod_x;
            if (we && !wbank) w0 <= wdata;
            if (we && wbank)  w1 <= wdata;
        end
    end
endmodule

`default_nettype wire
