// Small synchronous FIFO (first-word fall-through) decoupling the output stream from the array.
`default_nettype none

module ws_fifo #(
    parameter integer W = 32,
    parameter integer DEPTH_LOG2 = 2
) (
    input  wire         clk,
    input  wire         rst,
    input  wire         push,
    input  wire [W-1:0] din,
    input  wire         pop,
    output wire [W-1:0] dout,
    output wire         empty,
    output reg  [DEPTH_LOG2:0] count
);
    localparam integer DEPTH = 1 << DEPTH_LOG2;
    reg [W-1:0] mem [0:DEPTH-1];
    reg [DEPTH_LOG2-1:0] rd;
    reg [DEPTH_LOG2-1:0] wr;
    wire do_pop = pop && (count != 0);
    assign empty = (count == 0);
    assign dout = mem[rd];

    always @(posedge clk) begin
        if (rst) begin
            rd <= 0;
            wr <= 0;
            count <= 0;
        end else begin
            if (push) begin
                mem[wr] <= din;
                wr <= wr + 1'b1;
            end
            if (do_pop) rd <= rd + 1'b1;
            if (push && !do_pop) count <= count + 1'b1;
            else if (!push && do_pop) count <= count - 1'b1;
        end
    end
endmodule

`default_nettype wire
