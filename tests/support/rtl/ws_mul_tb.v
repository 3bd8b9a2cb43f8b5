// ws_mul against its definition (two registered stages, enable-gated) on random operands and
// random enables; prints "PASS <n>" or the first mismatch.
`timescale 1ns/1ps
module ws_mul_tb;
    parameter integer AW = 8;
    parameter integer BW = 8;
    reg clk = 1'b0;
    reg en = 1'b0;
    reg signed [AW-1:0] a = 0, a_d = 0;
    reg signed [BW-1:0] b = 0, b_d = 0;
    reg signed [AW+BW-1:0] p_ref = 0;
    wire signed [AW+BW-1:0] p;
    integer i, checked = 0;
    ws_mul #(.AW(AW), .BW(BW)) dut (.clk(clk), .en(en), .a(a), .b(b), .p(p));
    always #5 clk = ~clk;
    always @(posedge clk) begin
        if (en) begin
            a_d <= a;
            b_d <= b;
            p_ref <= a_d * b_d;
        end
    end
    initial begin
        for (i = 0; i < 4000; i = i + 1) begin
            @(negedge clk);
            if (i > 3) begin
                if (p !== p_ref) begin
                    $display("FAIL at %0d: p=%0d want %0d", i, p, p_ref);
                    $finish;
                end
                checked = checked + 1;
            end
            en = (i < 4) || (($random & 3) != 0);
            a = (i % 97 == 0) ? {1'b1, {(AW - 1){1'b0}}} : $random;
            b = (i % 89 == 0) ? {1'b1, {(BW - 1){1'b0}}} : $random;
        end
        $display("PASS %0d", checked);
        $finish;
    end
endmodule
