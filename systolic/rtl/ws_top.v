// Weight-stationary systolic array with AXI4-Lite control and AXI4-Stream data (see
// docs/systolic.md and morphware/systolic/regmap.py for the register map and stream formats).
//
// One command = one tiled GEMM  out = post(A (M x K) * W (K x N) + bias), run as P = KT * NT
// passes (one per R x C weight tile, K tiles innermost). The schedule is fixed by (M, KT, NT):
// a prologue of R+3 cycles loads the first weight tile and the first N tile's parameters, then
// every pass occupies a slot of S = max(M, R+3, ceil(C/2)) cycles in which its M activation rows
// enter the array while the next pass's weights (and parameters) load into the other bank.
// The last pass of every N tile sends its accumulated rows straight through the output stage,
// so draining overlaps computing. Whenever a stream the schedule needs in this cycle is not
// ready, the whole datapath freezes (global enable `adv`) and the stall counter counts the
// cycle; the cycle counter therefore equals the cycle model exactly, whatever the back-pressure.
`default_nettype none

module ws_top #(
    parameter integer R = 8,        // rows: K extent of a weight tile
    parameter integer C = 8,        // columns: N extent of a weight tile
    parameter integer DB = 8,       // data bits (8 or 16)
    parameter integer ACC = 32,     // accumulator bits
    parameter integer DEPTH = 256   // accumulator rows (max M per command)
) (
    input  wire              aclk,
    input  wire              aresetn,
    // AXI4-Lite control
    /* verilator lint_off UNUSEDSIGNAL */  // byte-lane bits of the addresses, strobes
    input  wire [5:0]        s_axil_awaddr,
    input  wire              s_axil_awvalid,
    output wire              s_axil_awready,
    input  wire [31:0]       s_axil_wdata,
    input  wire [3:0]        s_axil_wstrb,
    input  wire              s_axil_wvalid,
    output wire              s_axil_wready,
    output wire [1:0]        s_axil_bresp,
    output reg               s_axil_bvalid,
    input  wire              s_axil_bready,
    input  wire [5:0]        s_axil_araddr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire              s_axil_arvalid,
    output wire              s_axil_arready,
    output reg  [31:0]       s_axil_rdata,
    output wire [1:0]        s_axil_rresp,
    output reg               s_axil_rvalid,
    input  wire              s_axil_rready,
    // activations: one row of an A tile per beat, R lanes of DB bits
    input  wire [R*DB-1:0]   s_axis_a_tdata,
    input  wire              s_axis_a_tvalid,
    output wire              s_axis_a_tready,
    // weights and output-stage parameters: C lanes of 32 bits
    input  wire [C*32-1:0]   s_axis_w_tdata,
    input  wire              s_axis_w_tvalid,
    output wire              s_axis_w_tready,
    // outputs: one row of an N tile per beat, C lanes of 32 bits (sign-extended)
    output wire [C*32-1:0]   m_axis_o_tdata,
    output wire              m_axis_o_tvalid,
    input  wire              m_axis_o_tready,
    output wire              m_axis_o_tlast,
    output wire              irq
);
    localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam integer RW = (R > 1) ? $clog2(R) : 1;
    localparam integer DA = R + C;          // issue -> de-skewed array result
    localparam integer DP = DA + 4;         // issue -> output pushed into the FIFO
    localparam integer SMIN = (R + 3 > (C + 1) / 2) ? R + 3 : (C + 1) / 2;
    localparam integer TW = AW + 6;         // tag: {eoc, pidx[1:0], row, last, first, valid}
    localparam [1:0] ST_IDLE = 2'd0, ST_RUN = 2'd1, ST_FLUSH = 2'd2;

    wire rst = !aresetn;

    // ---------------------------------------------------------------- registers (AXI4-Lite)
    reg [31:0] cfg_m, cfg_kt, cfg_nt;
    reg        cfg_relu, cfg_raw;
    reg [1:0]  state;
    reg        done_r, err_r;
    reg [31:0] cyc, stl;

    wire wr_fire = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
    assign s_axil_awready = wr_fire;
    assign s_axil_wready  = wr_fire;
    assign s_axil_bresp   = 2'b00;
    assign s_axil_rresp   = 2'b00;
    assign s_axil_arready = !s_axil_rvalid;
    wire start = wr_fire && (s_axil_awaddr[5:2] == 4'd0) && s_axil_wdata[0] && (state == ST_IDLE);
    wire cfg_ok = (cfg_m != 0) && (cfg_m <= DEPTH) && (cfg_kt != 0) && (cfg_nt != 0);

    always @(posedge aclk) begin
        if (rst) begin
            s_axil_bvalid <= 1'b0;
            s_axil_rvalid <= 1'b0;
            s_axil_rdata <= 32'd0;
            cfg_m <= 32'd0;
            cfg_kt <= 32'd0;
            cfg_nt <= 32'd0;
            cfg_relu <= 1'b0;
            cfg_raw <= 1'b0;
        end else begin
            if (wr_fire) begin
                s_axil_bvalid <= 1'b1;
                case (s_axil_awaddr[5:2])
                    4'd2: cfg_m <= s_axil_wdata;
                    4'd3: cfg_kt <= s_axil_wdata;
                    4'd4: cfg_nt <= s_axil_wdata;
                    4'd5: begin
                        cfg_relu <= s_axil_wdata[0];
                        cfg_raw <= s_axil_wdata[1];
                    end
                    default: ;
                endcase
            end else if (s_axil_bready) begin
                s_axil_bvalid <= 1'b0;
            end
            if (s_axil_arvalid && !s_axil_rvalid) begin
                s_axil_rvalid <= 1'b1;
                case (s_axil_araddr[5:2])
                    4'd1: s_axil_rdata <= {29'd0, err_r, done_r, state != ST_IDLE};
                    4'd2: s_axil_rdata <= cfg_m;
                    4'd3: s_axil_rdata <= cfg_kt;
                    4'd4: s_axil_rdata <= cfg_nt;
                    4'd5: s_axil_rdata <= {30'd0, cfg_raw, cfg_relu};
                    4'd6: s_axil_rdata <= cyc;
                    4'd7: s_axil_rdata <= stl;
                    4'd8: s_axil_rdata <= {ACC[7:0], DB[7:0], C[7:0], R[7:0]};
                    4'd9: s_axil_rdata <= DEPTH;
                    default: s_axil_rdata <= 32'd0;
                endcase
            end else if (s_axil_rready) begin
                s_axil_rvalid <= 1'b0;
            end
        end
    end
    assign irq = done_r;

    // ---------------------------------------------------------------- schedule
    reg [31:0] m_r, kt_r, nt_r, s_len, cnt, ti, tj;
    reg        relu_r, raw_r, pro, qpar;
    wire run = (state == ST_RUN);
    wire final_pass = (ti == kt_r - 1) && (tj == nt_r - 1);
    wire in_slot = run && !pro;
    wire need_a = in_slot && (cnt < m_r);
    wire next_new_n = (ti == kt_r - 1);      // the pass after this one starts a new N tile
    wire ld_w_pro = run && pro && (cnt < R);
    wire ld_p_pro = run && pro && (cnt >= R) && (cnt < R + 3);
    wire ld_w_slot = in_slot && !final_pass && (cnt < R);
    wire ld_p_slot = in_slot && !final_pass && next_new_n && (cnt >= R) && (cnt < R + 3);
    wire need_w = ld_w_pro || ld_p_pro || ld_w_slot || ld_p_slot;

    wire [3:0] fifo_count;
    wire push_req;
    wire adv = run && (!need_a || s_axis_a_tvalid) && (!need_w || s_axis_w_tvalid)
               && (!push_req || (fifo_count < 4'd4));
    assign s_axis_a_tready = need_a && adv;
    assign s_axis_w_tready = need_w && adv;
    wire fifo_empty;
    wire flush_ok = (fifo_count == 4'd0) || ((fifo_count == 4'd1) && m_axis_o_tready);

    always @(posedge aclk) begin
        if (rst) begin
            state <= ST_IDLE;
            done_r <= 1'b0;
            err_r <= 1'b0;
            cyc <= 32'd0;
            stl <= 32'd0;
            pro <= 1'b0;
            cnt <= 32'd0;
            ti <= 32'd0;
            tj <= 32'd0;
            qpar <= 1'b0;
            m_r <= 32'd0;
            kt_r <= 32'd0;
            nt_r <= 32'd0;
            s_len <= 32'd0;
            relu_r <= 1'b0;
            raw_r <= 1'b0;
        end else if (start) begin
            done_r <= 1'b0;
            err_r <= !cfg_ok;
            if (cfg_ok) begin
                state <= ST_RUN;
                cyc <= 32'd0;
                stl <= 32'd0;
                pro <= 1'b1;
                cnt <= 32'd0;
                ti <= 32'd0;
                tj <= 32'd0;
                qpar <= 1'b0;
                m_r <= cfg_m;
                kt_r <= cfg_kt;
                nt_r <= cfg_nt;
                s_len <= (cfg_m > SMIN) ? cfg_m : SMIN;
                relu_r <= cfg_relu;
                raw_r <= cfg_raw;
            end
        end else if (run) begin
            if (!adv) begin
                stl <= stl + 32'd1;
            end else begin
                cyc <= cyc + 32'd1;
                if (pro) begin
                    if (cnt == R + 2) begin
                        pro <= 1'b0;
                        cnt <= 32'd0;
                    end else begin
                        cnt <= cnt + 32'd1;
                    end
                end else if (final_pass) begin
                    if (cnt == m_r - 1 + DP) state <= ST_FLUSH;
                    else cnt <= cnt + 32'd1;
                end else if (cnt == s_len - 1) begin
                    cnt <= 32'd0;
                    qpar <= !qpar;
                    if (next_new_n) begin
                        ti <= 32'd0;
                        tj <= tj + 32'd1;
                    end else begin
                        ti <= ti + 32'd1;
                    end
                end else begin
                    cnt <= cnt + 32'd1;
                end
            end
        end else if (state == ST_FLUSH) begin
            if (flush_ok) cyc <= cyc + 32'd1;
            else stl <= stl + 32'd1;
            if (fifo_count == 4'd0) begin
                state <= ST_IDLE;
                done_r <= 1'b1;
            end
        end
    end

    // ---------------------------------------------------------------- weight and parameter writes
    // Row k of a weight tile is written to column c at (beat cycle + c): the same skew as the
    // activations, so a bank is rewritten exactly behind the last activation that reads it.
    wire         w_we0 = (ld_w_pro || ld_w_slot) && adv;
    wire [RW-1:0] w_row0 = cnt[RW-1:0];
    wire         w_bank0 = pro ? 1'b0 : !qpar;
    wire         p_we = (ld_p_pro || ld_p_slot) && adv;
    wire [1:0]   p_idx = cnt[1:0] - R[1:0];        // 0 bias, 1 mult, 2 shift
    wire [1:0]   p_entry = pro ? 2'd0 : (tj[1:0] + 2'd1);

    // Unpacked net arrays (not wide packed buses): each element is its own net, so a simulator
    // only re-evaluates the PEs whose inputs changed (Icarus crawls on wide shared buses).
    wire            wc_we [0:C-1];
    wire [RW-1:0]   wc_row [0:C-1];
    wire            wc_bank [0:C-1];
    wire [DB-1:0]   wc_data [0:C-1];

    genvar r, c;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_wcol
            if (c == 0) begin : g_first
                assign wc_we[0] = w_we0;
                assign wc_row[0] = w_row0;
                assign wc_bank[0] = w_bank0;
                assign wc_data[0] = s_axis_w_tdata[DB-1:0];
            end else begin : g_delay
                reg            we_q;
                reg [RW-1:0]   row_q;
                reg            bank_q;
                reg [DB-1:0]   dl [0:c-1];
                integer        k;
                always @(posedge aclk) begin
                    if (rst) begin
                        we_q <= 1'b0;
                    end else if (adv) begin
                        we_q <= wc_we[c-1];
                    end
                    if (adv) begin
                        row_q <= wc_row[c-1];
                        bank_q <= wc_bank[c-1];
                        dl[0] <= s_axis_w_tdata[c*32 +: DB];
                        for (k = 1; k < c; k = k + 1) dl[k] <= dl[k-1];
                    end
                end
                assign wc_we[c] = we_q && adv;
                assign wc_row[c] = row_q;
                assign wc_bank[c] = bank_q;
                assign wc_data[c] = dl[c-1];
            end
        end
    endgenerate

    // ---------------------------------------------------------------- input skew and the array
    /* verilator lint_off UNUSEDSIGNAL */  // the last column's activation outputs
    wire [DB-1:0]  a_w [0:R*(C+1)-1];
    wire           s_w [0:R*(C+1)-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [ACC-1:0] p_w [0:(R+1)*C-1];

    generate
        for (c = 0; c < C; c = c + 1) begin : g_top
            assign p_w[c] = {ACC{1'b0}};
        end
        for (r = 0; r < R; r = r + 1) begin : g_skew
            reg [DB:0] sk [0:r];
            integer k;
            always @(posedge aclk) begin
                if (adv) begin
                    sk[0] <= need_a ? {qpar, s_axis_a_tdata[r*DB +: DB]} : {qpar, {DB{1'b0}}};
                    for (k = 1; k <= r; k = k + 1) sk[k] <= sk[k-1];
                end
            end
            assign a_w[r*(C+1)] = sk[r][DB-1:0];
            assign s_w[r*(C+1)] = sk[r][DB];
        end
        for (r = 0; r < R; r = r + 1) begin : g_row
            for (c = 0; c < C; c = c + 1) begin : g_col
                ws_pe #(.DB(DB), .ACC(ACC)) pe (
                    .clk(aclk),
                    .en(adv),
                    .a_in(a_w[r*(C+1)+c]),
                    .sel_in(s_w[r*(C+1)+c]),
                    .ps_in(p_w[r*C+c]),
                    .we(wc_we[c] && (wc_row[c] == r[RW-1:0])),
                    .wbank(wc_bank[c]),
                    .wdata(wc_data[c]),
                    .a_out(a_w[r*(C+1)+c+1]),
                    .sel_out(s_w[r*(C+1)+c+1]),
                    .ps_out(p_w[(r+1)*C+c])
                );
            end
        end
    endgenerate

    // ---------------------------------------------------------------- output de-skew
    wire [ACC-1:0] res [0:C-1];
    generate
        for (c = 0; c < C; c = c + 1) begin : g_deskew
            if (c == C - 1) begin : g_direct
                assign res[c] = p_w[R*C+c];
            end else begin : g_delay
                reg [ACC-1:0] dl [0:C-2-c];
                integer k;
                always @(posedge aclk) begin
                    if (adv) begin
                        dl[0] <= p_w[R*C+c];
                        for (k = 1; k <= C - 2 - c; k = k + 1) dl[k] <= dl[k-1];
                    end
                end
                assign res[c] = dl[C-2-c];
            end
        end
    endgenerate

    // ---------------------------------------------------------------- tags travelling with rows
    wire [TW-1:0] tag_in = {need_a && final_pass && (cnt == m_r - 1), tj[1:0], cnt[AW-1:0],
                            ti == kt_r - 1, ti == 0, need_a};
    reg  [TW-1:0] tp [0:DA-1];
    reg  [TW-1:0] t1, t2, t3, t4;
    integer ki;
    always @(posedge aclk) begin
        if (rst) begin
            for (ki = 0; ki < DA; ki = ki + 1) tp[ki] <= {TW{1'b0}};
            t1 <= {TW{1'b0}};
            t2 <= {TW{1'b0}};
            t3 <= {TW{1'b0}};
            t4 <= {TW{1'b0}};
        end else if (adv) begin
            tp[0] <= tag_in;
            for (ki = 1; ki < DA; ki = ki + 1) tp[ki] <= tp[ki-1];
            t1 <= tp[DA-1];
            t2 <= t1;
            t3 <= t2;
            t4 <= t3;
        end
    end
    /* verilator lint_off UNUSEDSIGNAL */  // only the row / flag fields are read here
    wire [TW-1:0] t_rd_full = tp[DA-2];
    wire [TW-1:0] t_ac_full = tp[DA-1];
    /* verilator lint_on UNUSEDSIGNAL */
    wire [AW-1:0] rd_row = t_rd_full[AW+2:3];
    wire [AW+2:0] t_ac = t_ac_full[AW+2:0];

    // ---------------------------------------------------------------- accumulator (sums K tiles)
    reg [C*ACC-1:0] accmem [0:DEPTH-1];
    reg [C*ACC-1:0] acc_rd;
    wire [C*ACC-1:0] acc_sum;
    generate
        for (c = 0; c < C; c = c + 1) begin : g_sum
            assign acc_sum[c*ACC +: ACC] = res[c]
                + (t_ac[1] ? {ACC{1'b0}} : acc_rd[c*ACC +: ACC]);
        end
    endgenerate
    always @(posedge aclk) begin
        if (adv) begin
            if (t_ac[0] && !t_ac[2]) accmem[t_ac[AW+2:3]] <= acc_sum;
            acc_rd <= accmem[rd_row];
        end
    end

    // ---------------------------------------------------------------- output stage per column
    wire [C*32-1:0] o4;
    wire [1:0] pi2 = t1[AW+4:AW+3];
    wire [1:0] pi3 = t2[AW+4:AW+3];
    wire [1:0] pi4 = t3[AW+4:AW+3];
    localparam signed [48:0] QMAX = (49'sd1 <<< (DB - 1)) - 49'sd1;
    localparam signed [48:0] QMIN = -(49'sd1 <<< (DB - 1));
    generate
        for (c = 0; c < C; c = c + 1) begin : g_out
            reg [31:0] bias_q [0:3];
            reg [15:0] mult_q [0:3];
            reg [5:0]  shift_q [0:3];
            reg [31:0] o1, o2, o3b, o4r;
            reg signed [48:0] o3p;
            wire [31:0] b = o1 + bias_q[pi2];
            wire signed [48:0] b_x = {{17{o2[31]}}, o2};
            wire signed [48:0] m_x = {33'd0, mult_q[pi3]};
            wire [5:0] sh = shift_q[pi4];
            wire signed [48:0] rnd = (sh == 6'd0) ? 49'sd0 : (49'sd1 <<< (sh - 6'd1));
            wire signed [48:0] ysum = o3p + rnd;
            wire signed [48:0] y = ysum >>> sh;
            wire signed [48:0] yr = (relu_r && y < 0) ? 49'sd0 : y;
            wire signed [48:0] ys = (yr > QMAX) ? QMAX : ((yr < QMIN) ? QMIN : yr);
            wire [31:0] ylane = {{(32 - DB){ys[DB-1]}}, ys[DB-1:0]};
            always @(posedge aclk) begin
                if (p_we) begin
                    case (p_idx)
                        2'd0: bias_q[p_entry] <= s_axis_w_tdata[c*32 +: 32];
                        2'd1: mult_q[p_entry] <= s_axis_w_tdata[c*32 +: 16];
                        default: shift_q[p_entry] <= s_axis_w_tdata[c*32 +: 6];
                    endcase
                end
                if (adv) begin
                    o1 <= acc_sum[c*ACC +: 32];
                    o2 <= b;
                    o3p <= b_x * m_x;
                    o3b <= o2;
                    o4r <= raw_r ? o3b : ylane;
                end
            end
            assign o4[c*32 +: 32] = o4r;
        end
    endgenerate

    // ---------------------------------------------------------------- output FIFO
    assign push_req = t4[0] && t4[2];
    ws_fifo #(.W(C * 32 + 1), .DEPTH_LOG2(2)) ofifo (
        .clk(aclk),
        .rst(rst),
        .push(push_req && adv),
        .din({t4[TW-1], o4}),
        .pop(m_axis_o_tready),
        .dout({m_axis_o_tlast, m_axis_o_tdata}),
        .empty(fifo_empty),
        .count(fifo_count[2:0])
    );
    assign fifo_count[3] = 1'b0;
    assign m_axis_o_tvalid = !fifo_empty;
endmodule

`default_nettype wire
