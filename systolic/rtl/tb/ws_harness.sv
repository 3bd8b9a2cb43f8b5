// Simulation harness around ws_top: stream sources read beats from a.hex / w.hex, the sink
// writes o.hex, and LFSRs insert input valid gaps and output back-pressure. Python only talks
// AXI4-Lite and waits for irq, so no Python runs per streamed beat.
`default_nettype none

module ws_harness #(
    parameter integer R = 8,
    parameter integer C = 8,
    parameter integer DB = 8,
    parameter integer ACC = 32,
    parameter integer DEPTH = 256
) (
    input  wire        aclk,
    input  wire        aresetn,
    input  wire        load,       // pulse: (re)open a.hex, w.hex and o.hex
    input  wire [7:0]  a_gap,      // P(no valid this cycle) = a_gap / 256
    input  wire [7:0]  w_gap,
    input  wire [7:0]  o_stall,    // P(tready low) = o_stall / 256
    input  wire [5:0]  s_axil_awaddr,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [5:0]  s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,
    output wire        irq,
    output reg  [31:0] out_beats
);
    reg  [R*DB-1:0]  a_data;
    reg              a_valid;
    wire             a_ready;
    reg  [C*32-1:0]  w_data;
    reg              w_valid;
    wire             w_ready;
    wire [C*32-1:0]  o_data;
    wire             o_valid;
    wire             o_last;
    reg  [31:0]      lfsr;
    wire             o_ready = (lfsr[23:16] >= o_stall);

    ws_top #(.R(R), .C(C), .DB(DB), .ACC(ACC), .DEPTH(DEPTH)) dut (
        .aclk(aclk), .aresetn(aresetn),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid),
        .s_axil_awready(s_axil_awready), .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(4'hf),
        .s_axil_wvalid(s_axil_wvalid), .s_axil_wready(s_axil_wready),
        .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr),
        .s_axil_arvalid(s_axil_arvalid), .s_axil_arready(s_axil_arready),
        .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .s_axis_a_tdata(a_data), .s_axis_a_tvalid(a_valid), .s_axis_a_tready(a_ready),
        .s_axis_w_tdata(w_data), .s_axis_w_tvalid(w_valid), .s_axis_w_tready(w_ready),
        .m_axis_o_tdata(o_data), .m_axis_o_tvalid(o_valid), .m_axis_o_tready(o_ready),
        .m_axis_o_tlast(o_last), .irq(irq)
    );

    integer fa = 0, fw = 0, fo = 0, rc;
    reg [R*DB-1:0] a_next;
    reg [C*32-1:0] w_next;

    always @(posedge aclk) begin
        lfsr <= {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
        if (load) begin
            if (fa != 0) $fclose(fa);
            if (fw != 0) $fclose(fw);
            if (fo != 0) $fclose(fo);
            fa = $fopen("a.hex", "r");
            fw = $fopen("w.hex", "r");
            fo = $fopen("o.hex", "w");
            a_valid <= 1'b0;
            w_valid <= 1'b0;
            out_beats <= 32'd0;
            lfsr <= 32'h1ACE_B00C;
        end else begin
            // AXI4-Stream: once valid rises it stays until the beat is taken.
            if (!a_valid || a_ready) begin
                a_valid <= 1'b0;
                if (fa != 0 && lfsr[7:0] >= a_gap) begin
                    rc = $fscanf(fa, "%h\n", a_next);
                    if (rc == 1) begin
                        a_data <= a_next;
                        a_valid <= 1'b1;
                    end else begin
                        $fclose(fa);
                        fa = 0;
                    end
                end
            end
            if (!w_valid || w_ready) begin
                w_valid <= 1'b0;
                if (fw != 0 && lfsr[15:8] >= w_gap) begin
                    rc = $fscanf(fw, "%h\n", w_next);
                    if (rc == 1) begin
                        w_data <= w_next;
                        w_valid <= 1'b1;
                    end else begin
                        $fclose(fw);
                        fw = 0;
                    end
                end
            end
            if (o_valid && o_ready && fo != 0) begin
                $fwrite(fo, "%0d %h\n", o_last, o_data);
                $fflush(fo);
                out_beats <= out_beats + 32'd1;
            end
        end
    end
endmodule

`default_nettype wire
