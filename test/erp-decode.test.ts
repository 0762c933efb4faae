import { decodeDetail, decodeMessage, decodeTable, parseReplyText, readEnvelope } from '../src/erp/decode';
import { ErpAuthError, ErpBadResponseError, ErpScriptError, ErpSessionError, ErpStatusError } from '../src/erp/errors';
import { parseErpDateTime, parseErpNumber } from '../src/erp/values';

/** Fixtures written from ERP-PROTOCOL.md §3-§7, not from our simulator. */
const ok = (body: unknown) => ({ header: { status: 0, message: 'ok', session: 'S' }, body });
const decode = (text: string) => readEnvelope(parseReplyText(text));

describe('reply envelope', () => {
  it.each([
    [1, ErpSessionError], [2, ErpSessionError], [9, ErpSessionError], [10, ErpSessionError], [15, ErpSessionError],
    [4, ErpAuthError], [5, ErpAuthError], [3, ErpStatusError], [99, ErpStatusError],
  ])('status %p becomes %p', (status, cls) => {
    expect(() => decode(JSON.stringify({ header: { status, message: 'm' } }))).toThrow(cls);
  });

  it('treats the string status "11" as a server script error', () => {
    expect(() => decode('{"header":{"status":"11","message":"服务程序发生错误:x"}}')).toThrow(ErpScriptError);
  });

  it('refuses HTML, truncated JSON and a reply without header as bad responses', () => {
    expect(() => decode('<html><body>错误</body></html>')).toThrow(expect.objectContaining({ kind: 'html' }));
    expect(() => decode('{"header":{"status":0')).toThrow(expect.objectContaining({ kind: 'json' }));
    expect(() => decode('[1,2]')).toThrow(ErpBadResponseError);
  });

  it('parses raw newlines and tabs inside strings', () => {
    const reply = decode('{"header":{"status":0,"message":"ok"},"body":{"model":"message","message":{"text":"第一行\n第二行\t完"}}}');
    expect(decodeMessage(reply).text).toBe('第一行\n第二行\t完');
  });
});

describe('SourceClass tables', () => {
  const table = (t: unknown, extra: Record<string, unknown> = {}) => ok({ model: 'source', action: 'table', source: { type: 'table', text: 'x', table: t, ...extra } });

  it('keys rows by column id, whatever the column order', () => {
    const reply = table({
      page: { recordcount: 43, pagesize: 20, pagecount: 3, pageindex: 1 },
      cols: [{ id: 'title', dbtype: 'string' }, { id: 'ord', dbtype: 'int' }],
      rows: [['打印机卡纸', '1021'], { value: ['安装调试', '1019'] }],
    });
    const t = decodeTable(readEnvelope(reply));
    expect(t.rows).toEqual([{ title: '打印机卡纸', ord: '1021' }, { title: '安装调试', ord: '1019' }]);
    expect(t.page).toEqual({ recordCount: 43, pageSize: 20, pageCount: 3, pageIndex: 1 });
  });

  it('accepts the empty-result quirk (no cols, no rows, zero page)', () => {
    const t = decodeTable(readEnvelope(table({ page: { recordcount: 0, pagesize: 0, pagecount: 0, pageindex: 0 }, cols: [], rows: [] })));
    expect(t.rows).toEqual([]);
    expect(t.page.recordCount).toBe(0);
  });

  it('reads the kind from type_ too', () => {
    const reply = ok({ model: 'source', source: { type_: 'table', table: { page: {}, cols: [], rows: [] } } });
    expect(decodeTable(readEnvelope(reply)).rows).toEqual([]);
  });

  it('refuses a report skeleton where a table was expected', () => {
    expect(() => decodeTable(readEnvelope(ok({ model: 'report', report: {} })))).toThrow(ErpBadResponseError);
  });
});

describe('BillClass and MessageClass', () => {
  it('keeps text and value of every field and the option list', () => {
    const reply = ok({
      model: 'bill',
      bill: { id: 'b', caption: '售后详情', value: '1021', groups: [{ id: 'base', caption: '基本信息', fields: [
        { id: 'title', caption: '售后主题', dbtype: 'string', type: 'text', text: '打印机卡纸', value: '' },
        { id: 'great1', caption: '紧急程度', dbtype: 'int', type: 'select', text: '紧急', value: '2', source: { type: 'options', options: [{ n: '紧急', v: '2' }] } },
      ] }] },
    });
    const d = decodeDetail(readEnvelope(reply));
    expect(d.kind).toBe('bill');
    if (d.kind !== 'bill') return;
    expect(d.bill.value).toBe('1021');
    expect(d.bill.groups[0]!.fields[1]).toEqual({ id: 'great1', caption: '紧急程度', dbtype: 'int', type: 'select', text: '紧急', value: '2', options: [{ name: '紧急', value: '2' }] });
  });

  it('returns the deleted-record message as a message, not an error', () => {
    const reply = ok({ model: 'message', message: { title: '', text: '抱歉，您访问的单据已被删除！', url: '', wait: 0, target: 'close', uitype: '', data: '' } });
    expect(decodeDetail(readEnvelope(reply))).toEqual({ kind: 'message', message: expect.objectContaining({ text: '抱歉，您访问的单据已被删除！', target: 'close' }) });
  });
});

describe('display values', () => {
  it.each([
    ['12,345.60', 12345.6], ['0.00', 0], ['-1,000', -1000], ['', null], ['abc', null], ['1,2,3.4.5', null],
  ])('number %p -> %p', (text, value) => expect(parseErpNumber(text)).toBe(value));

  it.each([
    ['2024/5/6 9:30:00', { year: 2024, month: 5, day: 6, hour: 9, minute: 30, second: 0 }],
    ['2024-05-06 09:30:00', { year: 2024, month: 5, day: 6, hour: 9, minute: 30, second: 0 }],
    ['2024/12/31', { year: 2024, month: 12, day: 31, hour: 0, minute: 0, second: 0 }],
    ['2024/2/31 1:00:00', null],
    ['yesterday', null],
    // Read by hand, as /^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$/ would.
    ['2024-5/6', { year: 2024, month: 5, day: 6, hour: 0, minute: 0, second: 0 }],
    ['2024/5/6T9:30', { year: 2024, month: 5, day: 6, hour: 9, minute: 30, second: 0 }],
    [' 2024/05/06 23:59:59 ', { year: 2024, month: 5, day: 6, hour: 23, minute: 59, second: 59 }],
    ['2024/2/29', { year: 2024, month: 2, day: 29, hour: 0, minute: 0, second: 0 }],
    ['2023/2/29', null],
    // Date.UTC reads years 0-99 as 1900-1999: 1900 was no leap year.
    ['0000/2/29', null],
    ['2024/5/6 9:30:', null],
    ['2024/5/6T', null],
    ['2024/5/6 9', null],
    ['2024/5/6 9:30:00x', null],
    ['2024/5/6  9:30', null],
    ['2024/005/06', null],
    ['2024/5/123', null],
    ['24/5/6', null],
    ['20245/5/6', null],
    ['2024.5.6', null],
    ['2024/5/6 24:00', null],
    ['2024/5/6 9:60', null],
    ['2024/13/1', null],
    ['2024/0/1', null],
    ['2024/4/31', null],
    ['２０２４/5/6', null],
    ['', null],
  ])('date %p', (text, value) => expect(parseErpDateTime(text)).toEqual(value));
});
